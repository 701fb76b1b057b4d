import numpy as np
import pytest
import torch
import torch.nn.functional as F

from projects.earthmind.datasets.tiling import choose_grid, dynamic_tile, image_tensor, num_tiles_for_shape

TILE = 56


@pytest.mark.parametrize(
    'height, width, grid',
    [
        (56, 56, (1, 1)),
        (48, 48, (1, 1)),  # 2x2 ties on aspect but the image is too small for it
        (120, 120, (2, 2)),  # enough pixels: the larger equal-aspect grid wins
        (79, 79, (1, 1)),  # 6241 px < 0.5 * 56**2 * 4
        (80, 80, (2, 2)),  # 6400 px > 0.5 * 56**2 * 4
        (60, 110, (2, 1)),  # wide
        (110, 60, (1, 2)),  # tall
        (48, 120, (3, 1)),  # aspect 2.5: closer to 3:1 than to 2:1 in log ratio
        (40, 400, (4, 1)),
        (400, 40, (1, 4)),
    ])
def test_grid_choice(height, width, grid):
    assert choose_grid(height, width, TILE, 1, 4) == grid


def test_min_tiles_forces_larger_grid():
    assert choose_grid(30, 30, TILE, 2, 4) == (2, 2)
    assert choose_grid(30, 60, TILE, 2, 2) == (2, 1)


@pytest.mark.parametrize('height, width', [(56, 56), (48, 120), (120, 48), (65, 105), (120, 120), (33, 250)])
@pytest.mark.parametrize('use_thumbnail', [True, False])
def test_tile_count_matches_num_tiles_for_shape(height, width, use_thumbnail):
    image = torch.rand(3, height, width)
    tiles = dynamic_tile(image, TILE, 1, 4, use_thumbnail)
    cols, rows = choose_grid(height, width, TILE, 1, 4)
    expected = cols * rows + (1 if use_thumbnail and cols * rows > 1 else 0)
    assert tiles.shape == (expected, 3, TILE, TILE)
    assert num_tiles_for_shape(height, width, TILE, 1, 4, use_thumbnail) == expected


def test_tiles_are_row_major_and_thumbnail_last():
    # 2x2 grid; each quadrant has its own value.
    image = torch.zeros(1, 112, 112)
    image[:, :56, 56:] = 1
    image[:, 56:, :56] = 2
    image[:, 56:, 56:] = 3
    tiles = dynamic_tile(image, TILE, 1, 4, use_thumbnail=True)
    assert tiles.shape == (5, 1, TILE, TILE)
    for i in range(4):
        torch.testing.assert_close(tiles[i], torch.full((1, TILE, TILE), float(i)))
    expected_thumbnail = F.interpolate(image[None], size=(TILE, TILE), mode='bilinear', antialias=True)[0]
    torch.testing.assert_close(tiles[4], expected_thumbnail)


def test_any_channel_count_and_numpy_input():
    image = torch.rand(5, 60, 110).numpy()
    tiles = dynamic_tile(image, TILE, 1, 4, use_thumbnail=True)
    assert tiles.shape == (3, 5, TILE, TILE) and tiles.dtype == torch.float32


def test_single_tile_has_no_thumbnail():
    assert dynamic_tile(torch.rand(3, 40, 50), TILE, 1, 4, use_thumbnail=True).shape == (1, 3, TILE, TILE)


@pytest.mark.parametrize('kwargs', [dict(min_tiles=0, max_tiles=4), dict(min_tiles=3, max_tiles=2)])
def test_bad_tile_numbers_raise(kwargs):
    with pytest.raises(ValueError, match='min_tiles'):
        num_tiles_for_shape(50, 50, TILE, use_thumbnail=True, **kwargs)


def test_one_tile_at_its_size_is_the_image_itself():
    image = torch.rand(6, 56, 56)
    tiles = dynamic_tile(image, tile_size=56, min_tiles=1, max_tiles=4, use_thumbnail=True)
    assert tiles.shape == (1, 6, 56, 56) and tiles.data_ptr() == image.data_ptr()
    # Bilinear resizing at scale 1 would return the same numbers: skipping it changes nothing.
    resized = F.interpolate(image[None], size=(56, 56), mode='bilinear', align_corners=False, antialias=True)[0]
    assert torch.equal(tiles[0], resized)


def test_flipped_views_become_the_same_tensor_as_a_copy():
    array = np.random.default_rng(0).random((2, 4, 3, 8, 10)).astype(np.float32)
    for view in (array, np.flip(array, -1), np.flip(array, -2), np.flip(np.flip(array, -1), -2)):
        tensor = image_tensor(view)
        assert torch.equal(tensor, torch.from_numpy(np.ascontiguousarray(view)))

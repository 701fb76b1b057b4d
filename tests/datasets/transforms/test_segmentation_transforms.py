"""LoadSegmentationMasks, MakeGroundingImage, masks under flips and crops, tile_grid and packing."""
import numpy as np
import pytest
import torch

from projects.earthmind.datasets.image_record import ImagePlan, Member
from projects.earthmind.structures.mask_codec import encode_rle
from projects.earthmind.datasets.sensors import get_sensor
from projects.earthmind.datasets.transforms import (DynamicTiling, LoadSegmentationMasks, MakeGroundingImage,
                                                    NormalizeImage, PackInputs, RandomCrop, RandomFlip, ScaleBands)
from projects.earthmind.datasets.grounding_composite import SAR_DB_RANGES
from tests.processors import tiny_processor

H, W = 24, 36
RED = np.array([0.9, 0.1, 0.1], dtype=np.float32)


def _rgb_results(masks=None, region_prompts=None):
    img = np.full((3, H, W), 0.5, dtype=np.float32)
    img[:, 4:10, 20:30] = RED[:, None, None]  # a red rectangle, asymmetric in the image
    record = {}
    if masks is not None:
        record['masks'] = masks
    if region_prompts is not None:
        record['region_prompts'] = region_prompts
    return dict(record_id='r1', record=record, img=img, ori_shape=(H, W), img_meta=None)


def _red_pixels(img):
    return np.isclose(img, RED[:, None, None]).all(axis=0)


@pytest.fixture
def grounding(sample_dir):
    """``grounding(**settings)``: a MakeGroundingImage step on a tiny processor with these grounding settings."""
    return lambda **settings: MakeGroundingImage(processor=tiny_processor(str(sample_dir / 'tokenizer'),
                                                                          grounding=settings))


def test_masks_and_prompts_decode_on_the_image_grid():
    results = LoadSegmentationMasks()(_rgb_results(masks=[[20, 4, 30, 4, 30, 10, 20, 10], [0, 0, 2, 0, 2, 2]],
                                                   region_prompts=[{'box': [20, 4, 30, 10]}]))
    assert results['gt_mask'].dtype == np.uint8 and results['gt_mask'].shape == (2, H, W)
    np.testing.assert_array_equal(results['gt_mask'][0].astype(bool), _red_pixels(results['img']))
    np.testing.assert_array_equal(results['region_mask'][0], results['gt_mask'][0])
    plain = LoadSegmentationMasks()(_rgb_results())
    assert plain['gt_mask'] is None and plain['region_mask'] is None
    with pytest.raises(ValueError, match=r"record 'r1': masks\[1\]: .*outside the 24x36 image"):
        LoadSegmentationMasks()(_rgb_results(masks=[[20, 4, 30, 4, 30, 10], [0, 0, 50, 0, 50, 5]]))
    with pytest.raises(ValueError, match='has no image'):
        LoadSegmentationMasks()(dict(_rgb_results(masks=[[0, 0, 2, 0, 2, 2]]), img=None))


@pytest.mark.parametrize('seed', range(6))
def test_flips_and_crops_keep_masks_on_the_red_pixels(seed, grounding):
    results = LoadSegmentationMasks()(_rgb_results(masks=[encode_rle(_red_pixels(_rgb_results()['img']))],
                                                   region_prompts=[{'box': [20, 4, 30, 10]}]))
    results = grounding()(results)
    results = RandomFlip(prob=0.5, seed=seed)(results)
    results = RandomCrop((16, 28), seed=seed)(results)
    red = _red_pixels(results['img'])
    assert results['gt_mask'].shape == results['region_mask'].shape == (1, 16, 28)
    np.testing.assert_array_equal(results['gt_mask'][0].astype(bool), red)
    np.testing.assert_array_equal(results['region_mask'][0].astype(bool), red)
    np.testing.assert_array_equal(results['grounding_image'], results['img'])


def test_zero_masks_pass_through_flip_and_crop():
    results = LoadSegmentationMasks()(_rgb_results(masks=[]))
    assert results['gt_mask'].shape == (0, H, W)
    results = RandomCrop((10, 10), seed=1)(RandomFlip(prob=1.0, seed=0)(results))
    assert results['gt_mask'].shape == (0, 10, 10)
    packed_mask = torch.as_tensor(results['gt_mask']).bool()
    assert packed_mask.shape == (0, 10, 10)


def test_rgb_grounding_image_is_the_image_before_normalisation(sample_dir):
    processor = tiny_processor(str(sample_dir / 'tokenizer'), grounding=dict(), rgb_mean=(0.5, 0.5, 0.5),
                               rgb_std=(0.2, 0.2, 0.2))
    results = MakeGroundingImage(processor=processor)(_rgb_results())
    results = NormalizeImage(processor=processor)(results)
    assert results['grounding_image'].dtype == np.float32
    assert np.isclose(results['grounding_image'][:, 0, 0], 0.5).all() and np.isclose(results['img'][:, 0, 0], 0).all()
    with pytest.raises(ValueError, match='must be made before normalisation'):
        MakeGroundingImage(processor=processor)(results)


def test_grounding_image_needs_grounding_settings(processor):
    with pytest.raises(ValueError, match='no grounding settings'):
        MakeGroundingImage(processor=processor)(_rgb_results())


def _multi_sensor(sensor, bands, img, valid=None, fields=None):
    spec = get_sensor(sensor)
    member = Member(spec, tuple(bands), '2023-06-01', fields or {})  # ScaleBands counts the sources per member
    return dict(record_id='ms', img=img, valid=np.ones(img.shape, bool) if valid is None else valid,
                channels=[(sensor, spec.band(b).name) for b in bands], sensors=[sensor],
                image_plan=ImagePlan(((member, ), ), None, None))


def test_multispectral_composite_gain_and_percentile(grounding):
    bands = ['B02', 'B03', 'B04', 'B08']
    refl = np.zeros((1, 4, 2, 3), dtype=np.float32)
    refl[0, 0], refl[0, 1], refl[0, 2], refl[0, 3] = 0.05, 0.1, 0.2, 0.9
    valid = np.ones(refl.shape, bool)
    valid[0, :, 0, 0] = False
    results = dict(_multi_sensor('sentinel2_l2a', bands, refl, valid), bands_scaled=True)
    picture = grounding()(dict(results))['grounding_image']
    # Default composite (red, green, blue) = B04, B03, B02, reflectance x 3 clipped; nodata black.
    np.testing.assert_allclose(picture[:, 1, 1], [0.6, 0.3, 0.15], rtol=1e-5)
    assert (picture[:, 0, 0] == 0).all() and picture.shape == (3, 2, 3) and picture.dtype == np.float32
    nir = grounding(composite=dict(sentinel2_l2a=('B08', 'B04', 'B03')), gain={'sentinel2_l2a': 1.0})
    np.testing.assert_allclose(nir(dict(results))['grounding_image'][:, 1, 1], [0.9, 0.2, 0.1], rtol=1e-5)
    ramp = refl.copy()
    ramp[0, :, :, :] = np.arange(6, dtype=np.float32).reshape(2, 3) / 10
    stretched = grounding(stretch='percentile', percentiles=(0, 100))(
        dict(results, img=ramp, valid=np.ones(refl.shape, bool)))['grounding_image']
    np.testing.assert_allclose(stretched[0], np.arange(6).reshape(2, 3) / 5, atol=1e-6)
    rgb = dict(_multi_sensor('aerial_rgb', ['red', 'green', 'blue'], np.full((1, 3, 2, 2), 0.5, np.float32)),
               bands_scaled=True)
    np.testing.assert_allclose(grounding()(rgb)['grounding_image'], 0.5)  # 8-bit product: gain 1
    with pytest.raises(ValueError, match='needs B11 of sentinel2_l2a, which was not loaded'):
        grounding(composite=dict(sentinel2_l2a=('B11', 'B08', 'B04')))(dict(results))
    with pytest.raises(ValueError, match='after ScaleBands'):
        grounding()(_multi_sensor('sentinel2_l2a', bands, refl))


def test_sar_composite_uses_fixed_db_ranges_and_scale_bands_output(grounding):
    power = np.zeros((1, 2, 1, 3), dtype=np.float32)
    power[0, 0] = [10**-2.5, 10**-1.25, 1.0]   # VV -25, -12.5, 0 dB
    power[0, 1] = [10**-3.2, 10**-1.85, 10**-0.5]  # VH -32, -18.5, -5 dB
    results = _multi_sensor('sentinel1_grd', ['VV', 'VH'], power, fields={'sar_units': 'power'})
    make = grounding()
    results = make(ScaleBands(processor=make.processor)(results))
    picture = results['grounding_image']
    np.testing.assert_allclose(picture[0, 0], [0.0, 0.5, 1.0], atol=1e-5)
    np.testing.assert_allclose(picture[1, 0], [0.0, 0.5, 1.0], atol=1e-5)
    ratio = (np.array([-25, -12.5, 0]) - np.array([-32, -18.5, -5]) - SAR_DB_RANGES['ratio'][0]) / 15
    np.testing.assert_allclose(picture[2, 0], ratio.clip(0, 1), atol=1e-5)


def test_pair_source_chooses_the_member(sample_dir, grounding):
    refl = np.full((1, 5, 2, 2), 0.1, dtype=np.float32)
    refl[0, 3:] = -10.0  # VV, VH in dB
    optical, sar = get_sensor('sentinel2_l2a'), get_sensor('sentinel1_grd')
    results = dict(record_id='p', img=refl, valid=np.ones(refl.shape, bool), bands_scaled=True,
                   channels=[('sentinel2_l2a', 'B04'), ('sentinel2_l2a', 'B03'), ('sentinel2_l2a', 'B02'),
                             ('sentinel1_grd', 'VV'), ('sentinel1_grd', 'VH')],
                   sensors=[optical.name, sar.name])
    np.testing.assert_allclose(grounding()(dict(results))['grounding_image'][:, 0, 0], [0.3] * 3, rtol=1e-5)
    sar_picture = grounding(source='sar')(dict(results))['grounding_image'][:, 0, 0]
    np.testing.assert_allclose(sar_picture, [15 / 25, 22 / 27, 0.0], atol=1e-5)
    with pytest.raises(ValueError, match="source must be one of"):
        tiny_processor(str(sample_dir / 'tokenizer'), grounding=dict(source='thermal'))


def test_tile_grid_of_rgb_images_and_band_groups(sample_dir):
    tokenizer = str(sample_dir / 'tokenizer')
    tiling = DynamicTiling(processor=tiny_processor(tokenizer, max_tiles=6))
    tiled = tiling(dict(img=np.zeros((3, 56, 168), np.float32)))
    assert tiled['tile_grid'] == (1, 3, True) and tiled['pixel_values'].shape[0] == 4
    single = tiling(dict(img=np.zeros((3, 56, 56), np.float32)))
    assert single['tile_grid'] == (1, 1, False)
    groups = DynamicTiling(processor=tiny_processor(tokenizer, max_tiles=6, use_thumbnail=False))(
        dict(img=np.zeros((1, 2, 3, 112, 56), np.float32)))
    assert groups['tile_grid'] == (2, 1, False) and groups['image_layout'] == (1, 2, 2)
    assert tiling(dict(img=None))['tile_grid'] is None


def test_pack_inputs_adds_segmentation_tensors_only_when_present(processor):
    base = dict(index=0, record_id='r', img_path='a.tif', ori_shape=(4, 5), input_ids=torch.ones(3, dtype=torch.long),
                labels=torch.ones(3, dtype=torch.long), pixel_values=torch.zeros(1, 3, 4, 4), num_image_tokens=1,
                image_layout=(1, 1, 1), group_names=['rgb'], tile_grid=(1, 1, False))
    pack = PackInputs(processor=processor)
    assert not {'gt_masks', 'grounding_image', 'region_masks'} & set(pack(dict(base)))
    packed = pack(dict(base, gt_mask=np.ones((2, 4, 5), np.uint8), region_mask=np.ones((1, 4, 5), np.uint8),
                               grounding_image=np.zeros((3, 4, 5), np.float64)))
    assert packed['gt_masks'].dtype == packed['region_masks'].dtype == torch.bool
    assert packed['gt_masks'].shape == (2, 4, 5) and packed['region_masks'].shape == (1, 4, 5)
    assert packed['grounding_image'].dtype == torch.float32 and packed['meta']['tile_grid'] == (1, 1, False)

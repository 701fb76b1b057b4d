"""DIOR-RSVG XML annotations -> grounding records; boxes survive the round trip within grid rounding."""
from projects.earthmind.datasets.converters.conversion import BOX_OUTSIDE_IMAGE, MALFORMED_SOURCE
from projects.earthmind.datasets.converters.dior_rsvg import SIZE_MISMATCH, convert_dior_rsvg
from projects.earthmind.structures.box_codec import grid_to_pixels, parse_grounded_text

from .helpers import answer, load_dataset, rgb, write_raster

W, H = 80, 60


def _xml(filename, objects, width=W, height=H):
    body = ''.join(f'<object><name>{name}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>'
                   f'<ymax>{b[3]}</ymax></bndbox><description>{text}</description></object>'
                   for name, b, text in objects)
    return (f'<annotation><filename>{filename}</filename><size><width>{width}</width><height>{height}</height>'
            f'<depth>3</depth></size>{body}</annotation>')


def test_dior_rsvg_round_trip(tmp_path, processor):
    ann = tmp_path / 'Annotations'
    ann.mkdir()
    for stem in ('00001', '00002', '00003', '00004'):
        write_raster(tmp_path / 'JPEGImages' / f'{stem}.jpg', rgb(H, W), driver='JPEG')
    boxes = [(7, 11, 33, 47), (40, 0, 80, 60)]
    (ann / '00001.xml').write_text(_xml('00001.jpg', [('vehicle', boxes[0], 'the  vehicle on the left'),
                                                      ('tenniscourt', boxes[1], 'the court on the right')]))
    (ann / '00002.xml').write_text(_xml('00002.jpg', [('ship', (50, 10, 90, 20), 'the ship')]))  # x2 > width
    (ann / '00003.xml').write_text(_xml('00003.jpg', [('ship', (1, 1, 5, 5), 'a ship')], width=800))
    (ann / '00004.xml').write_text('<annotation><filename>00004.jpg</filename')
    (ann / '00005.xml').write_text(_xml('00005.jpg', [('ship', (1, 1, 5, 5), 'a ship')]))

    records, report = convert_dior_rsvg(str(ann), str(tmp_path), 'JPEGImages')
    assert [answer(r) for r in records] == ['<ref>the vehicle on the left</ref><box>[[88, 183, 412, 783]]</box>',
                                            '<ref>the court on the right</ref><box>[[500, 0, 1000, 1000]]</box>']
    assert report.as_dict() == dict(kept=2, rejected=4, reasons={
        BOX_OUTSIDE_IMAGE: 1, SIZE_MISMATCH: 1, MALFORMED_SOURCE: 1, 'missing image file': 1})
    for record, box in zip(records, boxes):
        decoded = grid_to_pixels(parse_grounded_text(answer(record))[0].boxes[0], W, H)
        assert max(abs(a - b) for a, b in zip(decoded, box)) <= 0.5 * max(W, H) / 1000 + 1e-9
        assert record['eval']['box'] == list(parse_grounded_text(answer(record))[0].boxes[0])

    split, report = convert_dior_rsvg(str(ann), str(tmp_path), 'JPEGImages', ids=['00001', '00009'])
    assert len(split) == 2 and report.as_dict()['reasons'] == {MALFORMED_SOURCE: 1}
    _, samples = load_dataset(records, tmp_path, processor)
    assert samples[1]['meta']['eval']['box'] == [500, 0, 1000, 1000]

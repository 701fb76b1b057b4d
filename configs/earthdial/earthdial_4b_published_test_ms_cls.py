"""Published EarthDial_4B_MS on multispectral multilabel classification (BigEarthNet-S2 test, 19 classes).

Records, loader, metric and answer length as in
``configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_multispectral.py``; the model is
``earthdial_4b_published_test_base.py`` with the EarthDial_4B_MS folder. EarthDial feeds
the 12 Sentinel-2 L2A bands to its frozen RGB ViT three at a time, in the file's band order, and averages the
triples' patch tokens (``sequential_vit_features``); here the same triples are the processor's band groups and
``group_fusion='mean'`` averages them (``BandFusion``). The bands are normalised with this toolkit's Sentinel-2
statistics, not EarthDial's ``S2_MEAN``/``S2_STD``, and EarthDial's released MS evaluation script pools with its
``'bilinear'`` mosaic, which is not carried over: scores can differ from the paper's.
Run: ``tools/dist.sh test configs/earthdial/earthdial_4b_published_test_ms_cls.py 8``.
"""
from mmengine.config import read_base

with read_base():
    from ..earthmind.earthmind_internvl2_5_4b_sam2l_test_multispectral import *  # noqa: F401,F403
    from .earthdial_4b_published_test_base import *  # noqa: F401,F403

earthdial_path = 'pretrained/EarthDial_4B_MS'
model['processor'].update(
    tokenizer=earthdial_path,
    # Consecutive triples of BigEarthNet's 12-band order (B01 ... B12 without B10), as EarthDial cuts them.
    band_groups=dict(sentinel2_l2a=[('ed_b01_b03', ('B01', 'B02', 'B03')), ('ed_b04_b06', ('B04', 'B05', 'B06')),
                                    ('ed_b07_b8a', ('B07', 'B08', 'B8A')), ('ed_b09_b12', ('B09', 'B11', 'B12'))]))
model['pretrained'].update(path=earthdial_path, variant='multispectral')

model['generation_cfg'] = dict(max_new_tokens=96)

"""Run by the export tests in a process that cannot import this repository.

Started as ``python -I -S isolated_predict.py SITE_PACKAGES MODEL_DIR IMAGE QUESTION``: isolated mode and no
``site`` processing, so neither PYTHONPATH, the working folder nor the editable install of the repository are on
the path; only SITE_PACKAGES (torch, transformers, numpy, rasterio) is added, without its ``.pth`` hooks.
Prints one JSON line with the answer and the first logits.
"""
import json
import sys

sys.path.append(sys.argv[1])

try:
    import projects  # noqa: F401
except ImportError:
    PROJECT_IMPORTABLE = False
else:
    PROJECT_IMPORTABLE = True

import torch  # noqa: E402
from transformers import AutoModel  # noqa: E402

model = AutoModel.from_pretrained(sys.argv[2], trust_remote_code=True)
result = model.predict_forward(image=sys.argv[3], text=sys.argv[4])
print(json.dumps(dict(project_importable=PROJECT_IMPORTABLE, text=result['text'], ids=result['prediction_ids'],
                      crs=result['crs'], model_module=type(model).__module__, torch=torch.__version__,
                      project_modules=sorted(m for m in sys.modules if m.split('.')[0] == 'projects'))))

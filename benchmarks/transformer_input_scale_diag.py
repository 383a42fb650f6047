"""Which quantizer costs the Transformer its w8a8 accuracy on Burgers? Post-training w8a8 variants of
the patch embedding's input quantizer, on the float model of a finished `lowprec pareto` run:

    lowprec pareto --model transformer --dataset burgers --resolution 512 ... --out runs/transformer_burgers
    python benchmarks/transformer_input_scale_diag.py runs/transformer_burgers

Prints the test MSE of each variant (results: benchmarks/results/pareto_summary.md).
"""
import copy, json, sys
from pathlib import Path
import torch
from torch import nn
from lowprec.quant.study import StudyConfig, load_data, train_float, evaluate_full
from lowprec.quant import quantize_, calibrate
from lowprec.quant.config import get_config
from lowprec.quant.fake import FakeQuantizer
torch.set_num_threads(1)

h = json.loads(open(Path(sys.argv[1]) / 'pareto.jsonl').readline())['header']
cfg = StudyConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in h.items()}, presets=("float",), factors=(1,))
train, test = load_data(cfg)
fm, _ = train_float(cfg, train, test, Path(sys.argv[1]))
print('float', evaluate_full(fm, test, 1)['mse'])

class Split(nn.Module):
    """Quantize the first channel (u) and the rest (coordinates) with separate quantizers, or leave one side float."""
    def __init__(self, spec, q_u, q_c):
        super().__init__()
        self.qu = FakeQuantizer(spec, label='u') if q_u else nn.Identity()
        self.qc = FakeQuantizer(spec, label='coords') if q_c else nn.Identity()
    def forward(self, x):
        return torch.cat([self.qu(x[:, :1]), self.qc(x[:, 1:])], 1)

cfgq = get_config('w8a8')
for name, variant in [('w8a8 PTQ', None), ('patch_embed input float', (False, False)),
                      ('u quantized, coords float', (True, False)), ('coords quantized, u float', (False, True)),
                      ('u and coords, separate scales', (True, True))]:
    m = quantize_(copy.deepcopy(fm), cfgq)
    if variant is not None:
        m.model.patch_embed.input_quant = Split(cfgq.activation, *variant)
    calibrate(m, train, n_batches=16, batch_size=20)
    print(name, evaluate_full(m, test, 1)['mse'], flush=True)

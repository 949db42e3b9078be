"""Model "mycell": the chapter's GRU, h~_t = tanh(W [r_t * h_{t-1}, x_t] + b), the reset gate before
the matrix (PyTorch resets after it: r_t * (W_hn h_{t-1} + b_hn)). nn.GRU's parameters, so gate
init, checkpoints and `rnnlab inspect` treat it as a GRU. See docs/custom_cell.md.

    rnnlab train examples/custom_cell/config.yaml --user-dir examples/custom_cell
"""

import torch
import torch.nn.functional as F

from rnnlab.models import RecurrentConfig, RecurrentNet
from rnnlab.models.cells import ReferenceRecurrent
from rnnlab.registry import register_model


class ResetBeforeGRU(ReferenceRecurrent):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__("gru", input_size, hidden_size, batch_first=False)

    def forward(self, x, hx=None):  # x: (T, B, F), time-major as RecurrentNet calls it; h_0 = 0
        w_rz, w_n = self.weight_hh_l0.split([2 * self.hidden_size, self.hidden_size])
        b_rz, b_n = self.bias_hh_l0.split([2 * self.hidden_size, self.hidden_size])
        xw = F.linear(x, self.weight_ih_l0, self.bias_ih_l0)  # W_i x_t + b_i for all steps: (T, B, 3H)
        h = x.new_zeros(x.size(1), self.hidden_size)
        outputs, steps = [], {"reset_gate": [], "update_gate": [], "candidate": [], "hidden": []}
        for t in range(x.size(0)):
            x_r, x_z, x_n = xw[t].chunk(3, dim=1)
            h_r, h_z = F.linear(h, w_rz, b_rz).chunk(2, dim=1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + F.linear(r * h, w_n, b_n))  # the reset, before the matrix
            h = (1 - z) * n + z * h  # PyTorch's convention: z keeps the old state
            outputs.append(h)
            for values, v in zip(steps.values(), (r, z, n, h)) if self.record else ():
                values.append(v.detach())
        self.recorded = {name: torch.stack(v, dim=1) for name, v in steps.items() if v}  # (B, T, H)
        return torch.stack(outputs), h.unsqueeze(0)


class ResetBeforeGRUNet(RecurrentNet):
    def __init__(self, cfg: RecurrentConfig, spec):
        super().__init__(cfg, spec, cell="gru")  # nn.GRU layers with the configured gate init,
        self.use_implementation("reference")  # then the cell above in their place, weights kept

    def use_implementation(self, implementation: str) -> "ResetBeforeGRUNet":
        """This cell has one implementation: the step-by-step one above."""
        for directions in self.layers:
            for d, old in enumerate(directions):
                with torch.random.fork_rng(devices=[]):  # its throwaway weights draw none of our numbers
                    new = ResetBeforeGRU(old.input_size, old.hidden_size)
                new.load_state_dict(old.state_dict())
                directions[d] = new.to(old.weight_ih_l0).train(old.training)
        self.cfg = self.cfg.model_copy(update={"implementation": "reference"})
        return self


@register_model("mycell", config=RecurrentConfig)
def mycell(cfg: RecurrentConfig, spec) -> ResetBeforeGRUNet:
    """GRU with the reset gate before the matrix (the chapter's equations; a plugin)."""
    return ResetBeforeGRUNet(cfg, spec)

"""Model weights: a safetensors file of tensors beside a JSON file of the config and provenance.

``<name>.safetensors`` holds only tensors (nothing is unpickled when loading), ``<name>.json`` holds
``{"config": {...EGRConfig...}, "trained": bool, "description": str, ...}``. The default model ships in
``egr/data/``; its JSON says whether it is trained.

Importing torch takes seconds, so only the functions that build, save or place a model import it.
:func:`read_model_info`, the provenance a resumed ``egr run`` checks its earlier outputs against, reads
the JSON and hashes the file.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from egr.io import atomic_write_json, file_sha256

if TYPE_CHECKING:
    import torch

    from egr.model import EGR

DEFAULT_WEIGHTS = Path(__file__).parent / "data" / "egr_default.safetensors"
CA_NODE_IN = 28  # node feature width of the Cα graph (egr.model.EGRConfig.node_in); all-atom graphs have 39


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of loaded weights, reported in every ``<id>_scores.json``."""

    path: str
    sha256: str
    trained: bool
    description: str
    kind: str  # "all_atom" | "ca": which graph the model was built for
    gate_margin: float | None = None  # never-worse gate (egr.gate); None when the weights carry none


class DeviceError(ValueError):
    """A torch device that this machine or this build of torch does not have (a usage error)."""


def config_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_weights(model: EGR, weights: Path, trained: bool, description: str, extra: dict | None = None) -> None:
    """Write ``weights`` (safetensors) and its JSON sidecar."""
    from safetensors.torch import save_file

    weights = Path(weights)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    tmp = weights.with_name(f".{weights.name}.tmp")
    save_file(tensors, str(tmp))
    tmp.chmod(0o644)
    tmp.replace(weights)
    sidecar = {"config": asdict(model.config), "trained": trained, "description": description, **(extra or {})}
    atomic_write_json(config_path(weights), sidecar)


def _read_sidecar(weights: Path | None) -> tuple[Path, dict]:
    """The weights file (default: the shipped model) and its parsed JSON sidecar."""
    weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"weights file not found: {weights}")
    sidecar_path = config_path(weights)
    if not sidecar_path.is_file():
        raise FileNotFoundError(f"model config not found beside the weights: {sidecar_path}")
    return weights, json.loads(sidecar_path.read_text())


def _model_info(weights: Path, sidecar: dict, gate: bool) -> ModelInfo:
    return ModelInfo(
        path=str(weights),
        sha256=file_sha256(weights),
        trained=bool(sidecar.get("trained", False)),
        description=str(sidecar.get("description", "")),
        kind="ca" if sidecar["config"].get("node_in") == CA_NODE_IN else "all_atom",
        gate_margin=float(sidecar["gate"]["margin"]) if gate and sidecar.get("gate") else None,
    )


def read_model_info(weights: Path | None = None, gate: bool = True) -> ModelInfo:
    """Provenance of ``weights`` (default: the shipped model) as :func:`load_model` reports it, from the
    file's hash and its JSON sidecar, without importing torch."""
    return _model_info(*_read_sidecar(weights), gate)


def load_model(weights: Path | None = None, device: str | torch.device = "cpu",
               gate: bool = True) -> tuple[EGR, ModelInfo]:
    """Build the EGR model described by ``weights``' JSON sidecar and load its tensors (default: shipped model).
    ``gate=False`` drops the sidecar's never-worse gate (``gate_margin`` None: raw refinement)."""
    from safetensors.torch import load_file

    from egr.model import EGR, EGRConfig

    weights, sidecar = _read_sidecar(weights)
    model = EGR(EGRConfig(**sidecar["config"]))
    model.load_state_dict(load_file(str(weights)), strict=True)
    model.to(device).eval()
    return model, _model_info(weights, sidecar, gate)


def check_device(device: str) -> None:
    """Raise DeviceError unless ``device`` is a cpu, cuda or mps device that exists here. A malformed name,
    and CUDA with a torch wheel built for the CPU only (version ``…+cpu``), are refused before torch loads
    (seconds); anything else asks torch."""
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", device):
        raise DeviceError(f"{device!r}: use cpu, cuda, cuda:N or mps")
    if device.startswith("cuda"):
        try:
            version = metadata.version("torch")
        except metadata.PackageNotFoundError:
            version = ""
        if version.endswith("+cpu"):
            raise DeviceError(f"{device!r}: no such CUDA device here (torch {version} is built without CUDA); "
                              "use --device cpu")
    import torch

    parsed = torch.device(device)
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        build = "" if torch.backends.cuda.is_built() else f" (torch {torch.__version__} is built without CUDA)"
        raise DeviceError(f"{device!r}: no such CUDA device here{build}; use --device cpu")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{device!r}: MPS is not available on this machine; use --device cpu")

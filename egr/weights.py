"""Model weights: a safetensors file of tensors beside a JSON file of the config and provenance.

``<name>.safetensors`` holds only tensors (nothing is unpickled when loading), ``<name>.json`` holds
``{"config": {...EGRConfig...}, "trained": bool, "description": str, ...}``. The default model ships in
``egr/data/``; its JSON says whether it is trained.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from egr.io import atomic_write_json, file_sha256
from egr.model import EGR, EGRConfig

DEFAULT_WEIGHTS = Path(__file__).parent / "data" / "egr_default.safetensors"


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of loaded weights, reported in every ``<id>_scores.json``."""

    path: str
    sha256: str
    trained: bool
    description: str
    kind: str  # "all_atom" | "ca": which graph the model was built for
    gate_margin: float | None = None  # never-worse gate (egr.gate); None when the weights carry none


def config_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_weights(model: EGR, weights: Path, trained: bool, description: str, extra: dict | None = None) -> None:
    """Write ``weights`` (safetensors) and its JSON sidecar."""
    weights = Path(weights)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    tmp = weights.with_name(f".{weights.name}.tmp")
    save_file(tensors, str(tmp))
    tmp.chmod(0o644)
    tmp.replace(weights)
    sidecar = {"config": asdict(model.config), "trained": trained, "description": description, **(extra or {})}
    atomic_write_json(config_path(weights), sidecar)


def load_model(weights: Path | None = None, device: str | torch.device = "cpu",
               gate: bool = True) -> tuple[EGR, ModelInfo]:
    """Build the EGR model described by ``weights``' JSON sidecar and load its tensors (default: shipped model).
    ``gate=False`` drops the sidecar's never-worse gate (``gate_margin`` None: raw refinement)."""
    weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"weights file not found: {weights}")
    sidecar_path = config_path(weights)
    if not sidecar_path.is_file():
        raise FileNotFoundError(f"model config not found beside the weights: {sidecar_path}")
    sidecar = json.loads(sidecar_path.read_text())
    config = EGRConfig(**sidecar["config"])
    model = EGR(config)
    model.load_state_dict(load_file(str(weights)), strict=True)
    model.to(device).eval()
    info = ModelInfo(
        path=str(weights),
        sha256=file_sha256(weights),
        trained=bool(sidecar.get("trained", False)),
        description=str(sidecar.get("description", "")),
        kind="ca" if config.node_in == 28 else "all_atom",
        gate_margin=float(sidecar["gate"]["margin"]) if gate and sidecar.get("gate") else None,
    )
    return model, info

"""`TrainConfig`: every setting of a training run (each one a `facerec-train` option, facerec/cli/train.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    caches: list[str]  # CACHE or CACHE:PEOPLE_FILE (only those people)
    out: str
    exclude_pairs: list[str] = field(default_factory=list)  # people in these pairs files are left out
    backbone: str = "efficientnet-lite0"
    input_size: int = 112
    embedding_dim: int = 128
    identities_per_batch: int = 16  # P
    images_per_identity: int = 4  # K
    epochs: int = 10
    steps_per_epoch: int = 200
    learning_rate: float = 1e-3
    margin: float = 1.0
    triplet_weight: float = 1.0
    mask_prob: float = 0.5
    misalign_prob: float = 0.0  # masked faces warped by a measured MediaPipe alignment error on masked photos
    photo_masks: str | None = None  # a mask_overlays/ folder: masked faces may wear a photographic mask
    photo_mask_prob: float = 0.5  # with photo_masks: the fraction of masked faces (with a mesh) that do
    tight_prob: float = 0.4  # faces framed as if the photo had been cropped close to the face
    teacher: str | None = None  # "sface", "dlib", or several: "sface,dlib" (the first is the cosine target)
    teacher_weight: float = 1.0  # λ: cosine distillation toward the first teacher
    relational_weight: float = 0.0  # batch similarity-matrix distillation toward every teacher
    freeze_fraction: float = 0.0  # the backbone's first layers kept frozen, as a fraction of its layers
    cached_views: int = 0  # > 0: the frozen layers run once over this many fixed views per face (training/cached.py)
    val_identities: float = 0.05  # fraction of identities held out for validation
    val_pairs: int = 300  # genuine pairs (and as many impostor pairs)
    strategy: str = "default"
    max_images_per_identity: int = 60  # caps the few over-represented people
    seed: int = 0
    init: str | None = None  # an export folder whose weights start training (fine-tuning)
    real_masks: str | None = None  # prepared real masked + unmasked photos (RMFRD): selection-half rank-1 picks epochs

"""The pipeline's components as model_index.json names them: which classes this package defines (and where a
published checkpoint's shim files point them back to), and the checks that components fit together."""

from __future__ import annotations

from typing import Any

from .errors import GIDInputError
from .models import FrequencyUNet, PoolingSpectralAutoencoder, SplatRenderer
from .models.image_encoder import EfficientNetLiteEncoder

# The component classes this package defines, by class name -> their module (model_index.json's library entry).
PACKAGE_COMPONENTS = {
    c.__name__: c.__module__
    for c in (FrequencyUNet, PoolingSpectralAutoencoder, SplatRenderer, EfficientNetLiteEncoder)
}


def is_component_entry(name: str, entry: Any) -> bool:
    """A model_index.json entry naming a component: "name": [library, class_name] (strings, or nulls)."""
    return (
        not name.startswith("_")
        and isinstance(entry, list)
        and len(entry) == 2
        and all(part is None or isinstance(part, str) for part in entry)
    )


def package_model_index(config: dict[str, Any]) -> dict[str, Any]:
    """Read a model_index.json dict in its published (trust_remote_code) form as this package's form, in place.

    ``"_class_name": [module, "GIDPipeline"]`` becomes ``"GIDPipeline"``, and a component entry naming one of
    PACKAGE_COMPONENTS through another module (a shim file) is pointed at the package's module. Other entries
    (diffusers schedulers and autoencoders, null optional components) are kept. Returns the dict.
    """
    class_name = config.get("_class_name")
    if isinstance(class_name, list) and len(class_name) == 2 and class_name[1] == "GIDPipeline":
        config["_class_name"] = class_name[1]
    for name, entry in config.items():
        if is_component_entry(name, entry) and entry[0] is not None and entry[1] in PACKAGE_COMPONENTS:
            config[name] = [PACKAGE_COMPONENTS[entry[1]], entry[1]]
    return config


def check_image_encoder(unet: FrequencyUNet, encoder: EfficientNetLiteEncoder | None) -> None:
    """GIDInputError unless the U-Net gets exactly the features it was trained on (or needs none)."""
    wanted = unet.config.image_feature_encoder if unet.takes_image_features else None
    if wanted is None and encoder is None:
        return
    if wanted is None:
        raise GIDInputError("this U-Net takes no image features: the pipeline's image_encoder must be None")
    if encoder is None:
        raise GIDInputError(f"this U-Net is conditioned on the image features of {wanted}: give its image_encoder")
    if encoder.config.fingerprint != wanted or tuple(encoder.feature_channels) != tuple(
        unet.config.image_feature_channels
    ):
        raise GIDInputError(
            f"the image encoder {encoder.config.fingerprint} (features {encoder.feature_channels}) is not the one "
            f"the U-Net was trained on ({wanted}, features {tuple(unet.config.image_feature_channels)})"
        )

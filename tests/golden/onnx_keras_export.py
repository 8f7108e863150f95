"""ONNX files from Keras through tf2onnx, with Keras' outputs: fixtures for
crates/dlbench-formats/tests/onnx_import.rs (`keras_models_through_tf2onnx_give_keras_outputs`).

TensorFlow is not part of the test set-up (it is large and the files do not change), so the
files are committed. Regenerate them (from the repository root) in a throw-away virtualenv:

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu tf2onnx
    /tmp/tfvenv/bin/python tests/golden/onnx_keras_export.py crates/dlbench-formats/tests/fixtures/keras

For each model M it writes M.onnx (tf2onnx, opset 17, a symbolic batch), M.x.npy (3 seeded
samples) and M.y.npy (what Keras computes for them). The models are the seed workloads' layers
as a Keras user writes them, at a size that keeps the files small: an MLP, a CNN on NHWC images
(Conv2D, MaxPooling2D, Flatten, Dense) and an LSTM whose last output feeds a Dense head. Every
weight, biases included, is drawn uniformly from [-0.5, 0.5) (Keras starts biases at zero,
which tf2onnx would fold away).
"""

import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

layers = tf.keras.layers


def models():
    yield "mlp", tf.keras.Sequential([
        tf.keras.Input((30,)),
        layers.Dense(10, activation="relu"),
        layers.Dense(10, activation="relu"),
        layers.Dense(1, activation="sigmoid"),
    ])
    yield "cnn", tf.keras.Sequential([
        tf.keras.Input((16, 16, 1)),
        layers.Conv2D(8, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(10),
    ])
    yield "rnn", tf.keras.Sequential([
        tf.keras.Input((10, 1)),
        layers.LSTM(50),
        layers.Dense(1, activation="sigmoid"),
    ])


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(20241206)
    for name, model in models():
        model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32)
                           for w in model.get_weights()])
        sample = tuple(model.inputs[0].shape[1:])
        x = rng.standard_normal((3,) + sample).astype(np.float32)
        np.save(f"{out}/{name}.x.npy", x)
        np.save(f"{out}/{name}.y.npy", model(x).numpy())
        model.output_names = ["y"]
        spec = (tf.TensorSpec((None,) + sample, tf.float32, name="x"),)
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=17,
                                   output_path=f"{out}/{name}.onnx")
    print(f"tensorflow {tf.__version__}, tf2onnx {tf2onnx.__version__}")


if __name__ == "__main__":
    main()

"""C-RNN-GAN: continuous recurrent neural networks with adversarial training, in TF/Keras."""

import setuptools

setuptools.setup(
    name="crnn-gan",
    version="0.1.0",
    description="C-RNN-GAN (Mogren 2016) in TensorFlow/Keras 3: data, training, export.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["crnn_gan*", "tfds_midi*", "export*"]),
    package_data={"tfds_midi": ["crnn_gan_midi/*.tsv", "crnn_gan_midi/*.txt"]},
    py_modules=["train", "evaluate"],
    install_requires=[
        # The known-good versions are pinned in constraints.txt (see README: why pinned).
        "tensorflow>=2.16",
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        "tensorflow-io>=0.37",  # s3/hdfs/az file systems for tf.io.gfile
        "importlib_resources",  # TFDS 4.9.10 + TF 2.16 need it for builders in packages
        "mido>=1.3",
        "absl-py",
        "tensorboard",  # the TensorBoard callback (TF 2.21 no longer installs it)
        "numpy",
        "ai-edge-litert",  # TFLite runtime for on-device consumers
        "matplotlib",
        "music21>=9",  # ships the default offline corpus
    ],
    extras_require={
        # playwright drives the system Chromium in tests/test_web.py (no browser download);
        # pytest-xdist runs `make test` on both cores (Makefile: TEST_WORKERS).
        "test": ["pytest", "pytest-xdist", "hypothesis", "dill", "pretty_midi", "moto[server]",
                 "playwright"],
    },
)

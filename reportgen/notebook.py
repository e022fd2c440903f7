"""What the seed notebook ("Implementing LeNet with MXNET in R", 2018) set and measured.

One place for the numbers the report quotes and the tests compare against.
"""

from __future__ import annotations

# The seed's training configuration (mx.model.FeedForward.create arguments).
EPOCHS = 20
BATCH_SIZE = 100
LEARNING_RATE = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-5
SEED = 42

ACCURACY = 0.9901  # the seed's test accuracy
FIRST_TRAIN_LABELS = (5, 0, 4, 1, 9)  # the five digits the seed shows first

# caret::confusionMatrix(y_hat, y)$table as printed: rows are predictions,
# columns the reference.
CONFUSION_TABLE = (
    (974, 0, 1, 0, 0, 2, 3, 0, 2, 0),
    (1, 1131, 0, 0, 0, 0, 2, 2, 0, 0),
    (0, 0, 1025, 1, 1, 0, 0, 2, 0, 0),
    (0, 0, 0, 1000, 0, 5, 1, 1, 1, 2),
    (0, 0, 1, 0, 970, 0, 0, 1, 0, 6),
    (1, 0, 0, 6, 0, 878, 4, 0, 2, 2),
    (3, 2, 1, 0, 1, 2, 947, 0, 0, 1),
    (1, 0, 2, 0, 0, 0, 0, 1016, 0, 3),
    (0, 2, 2, 3, 0, 4, 1, 1, 966, 1),
    (0, 0, 0, 0, 10, 1, 0, 5, 3, 994),
)

# cm$overall as printed (7 significant digits); McnemarPValue was NaN.
OVERALL = {
    "accuracy": 0.9901000,
    "kappa": 0.9889958,
    "accuracy_lower": 0.9879601,
    "accuracy_upper": 0.9919467,
    "accuracy_null": 0.1135000,
    "accuracy_p_value": 0.0,
    "mcnemar_p_value": float("nan"),
}

WORST_PAIR = {"prediction": 9, "reference": 4, "count": 10}

# SHA-256 of the four files as published; data/mnist holds these.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

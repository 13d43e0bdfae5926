"""The Keras networks and their export: training and export only (imports TensorFlow)."""

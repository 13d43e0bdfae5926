"""Training: the face cache and tf.data, the teacher's targets, the loop."""

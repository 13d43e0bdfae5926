"""Faces in a photo: detection, keypoints, alignment, masks (drawn and photographic), mask presence."""

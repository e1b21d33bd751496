"""Discriminative validity of the falsification test on worlds with known ground truth."""

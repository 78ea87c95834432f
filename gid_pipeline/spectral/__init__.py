"""Spectral volumes: motion <-> spectrum math and normalisation (transform), the volume with its file format
(volume), the playback controls on a volume (controls), and photo-guided resampling to an output grid (guided)."""

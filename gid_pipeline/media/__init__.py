"""Media files: video and image reading and writing (video), exports of pipeline outputs (export), and pictures of
motion (visualize)."""

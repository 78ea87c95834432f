"""Image-based rendering of motion: softmax splatting (splatting), hole filling (fill), and loops (loop)."""

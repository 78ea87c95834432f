"""Motion measured or simulated: optical flow (flow), a clip's spectral volume (clip), modal dynamics of a poke
(dynamics), and the motion masks a user paints (mask)."""

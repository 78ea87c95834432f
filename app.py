"""Generative Image Dynamics: the Gradio app (and the Hugging Face Space's entry point).

Run ``python app.py [--checkpoint DIR_OR_REPO] [--host 0.0.0.0] [--port 7860] [--share]``. The app lives in the
package (gid_pipeline.app: the page in ``ui``, the server side in ``server``); this file is what a Space runs.
"""

from gid_pipeline.app import main

if __name__ == "__main__":
    main()

"""The web demo of exported models (``tools/demo.py``): inputs, rendering, downloads and the Gradio app."""

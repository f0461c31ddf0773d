"""Images: the content store, the image index, unpacked layers and the built-in images."""

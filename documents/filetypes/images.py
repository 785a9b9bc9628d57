"""PNG and JPEG: opened and verified with Pillow, their size in pixels capped."""

from documents.filetypes.common import Detected, refuse

IMAGE_MAX_PIXELS = 50_000_000


def detect(stream, mime_type: str, label: str) -> Detected:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(stream) as image:
            if image.width * image.height > IMAGE_MAX_PIXELS:
                raise refuse(f"This image is too large ({image.width}×{image.height} pixels).")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise refuse(f"This {label} image is damaged ({error.__class__.__name__}).") from None
    except Image.DecompressionBombError:
        raise refuse("This image is too large to open safely.") from None
    return Detected(mime_type)

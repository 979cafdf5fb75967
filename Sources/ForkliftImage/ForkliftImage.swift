// Placeholder module (issue 3): JPEG decoding and preprocessing.
import CJPEG

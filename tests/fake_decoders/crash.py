"""A decoder child that dies like FFmpeg on a crafted file (segmentation fault)."""

import os
import signal
import sys

if __name__ == "__main__":
    from workers.media.video import main

    if sys.argv[1] == "probe":  # probing succeeds; decoding crashes
        sys.exit(main())
    os.kill(os.getpid(), signal.SIGSEGV)

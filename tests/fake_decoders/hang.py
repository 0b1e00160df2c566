"""A decoder child that hangs forever while decoding (an FFmpeg infinite loop on a crafted file)."""

import sys
import time

if __name__ == "__main__":
    from workers.media.video import main

    if sys.argv[1] == "probe":
        sys.exit(main())
    while True:
        time.sleep(1)

import sys

from weedseg.cli import main

sys.exit(main())

import sys

from lowrt.cli import main

sys.exit(main())

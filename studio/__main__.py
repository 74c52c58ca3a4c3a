import sys

from studio.launcher import main

sys.exit(main())

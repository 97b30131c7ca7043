import sys

from mailer.operator.cli import main

sys.exit(main())

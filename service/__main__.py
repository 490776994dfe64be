import sys

from service.server.main import main

sys.exit(main())

from kspikese.cli import main

raise SystemExit(main())

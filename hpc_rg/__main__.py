from hpc_rg.cli import main

raise SystemExit(main())

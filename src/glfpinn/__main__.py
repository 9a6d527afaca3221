from glfpinn.cli import main

raise SystemExit(main())

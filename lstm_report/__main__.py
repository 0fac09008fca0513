"""``python -m lstm_report`` runs the command line."""

from lstm_report.cli import main

raise SystemExit(main())

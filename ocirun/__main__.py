from ocirun.cli import run_main

run_main()

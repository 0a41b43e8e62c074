from qbank.server.cli import main

if __name__ == "__main__":  # not when a worker process (anyio.to_process) loads this as its parent's main module
    main()

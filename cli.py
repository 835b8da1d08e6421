"""The sharesearch command line: parses arguments and calls the library."""
import sys

def main(argv=None) -> int:
    print("sharesearch: not yet", file=sys.stderr)
    return 1

if __name__ == "__main__":
    raise SystemExit(main())

"""Print a config after composition (``read_base``) and ``--cfg-options`` overrides.

Usage: python tools/print_config.py CONFIG [--cfg-options key=value ...]
"""
import argparse

from projects.earthmind.engine.config_file import load_config
from projects.earthmind.engine.config_options import ConfigOptions


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, help='override config entries, key=value')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    print(cfg.pretty_text)


if __name__ == '__main__':
    main()

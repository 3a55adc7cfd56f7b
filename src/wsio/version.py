"""The version of wsio, in one place."""

version = "0.1.0.dev0"

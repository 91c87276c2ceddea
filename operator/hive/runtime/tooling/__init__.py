"""Tools from ToolVersions: each implementation kind turns a version into callable functions."""

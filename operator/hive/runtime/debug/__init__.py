"""The interactive debugger of a team run: breakpoints on team events and calls, a paused run
that is inspected and changed, every action recorded, sessions exported and replayed."""

DEBUG_PORT = 8092  # the coordinator's container port "debug", declared when the team debugs
# on a peer request of a debugged run: the task it hands over stops at the coordinator's
# debugger too (hive.runtime.debug.remote)
DEBUG_MARK = "X-Hive-Debug"

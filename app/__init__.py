"""The application: the main job's orchestration, its one config tree, the ``deadstock``
command line, exports, reports and alerts. Nothing below it imports it."""

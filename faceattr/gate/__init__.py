"""The pre-submission gate as an installable pytest suite: the plugin and its checks."""

"""What the project services announce to the apps built on projects.

Projects sit below the apps that use them (import-linter's layers contract in pyproject.toml), so
`project_create` cannot call, say, the model hub. It sends `project_created` inside its
transaction instead, and each app that gives a new project something connects a receiver in its
AppConfig.ready (the model hub: the current profile's model versions).
"""

from django.dispatch import Signal

project_created = Signal()  # sender: the Project class; project: the new row

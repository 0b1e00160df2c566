# The admin's login page guesses passwords as well as ours: the same failed-sign-in limits.
from django.contrib import admin

from apps.accounts.login_throttle import login_throttled

admin.site.login = login_throttled(admin.site.login)

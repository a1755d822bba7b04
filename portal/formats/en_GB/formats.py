# Only the formats the portal's own pages use; anything else comes from Django's en_GB.
DATETIME_FORMAT = "j M Y H:i T"  # 25 Oct 2006 14:30 UTC, as the moment filter shows times
TIME_FORMAT = "H:i T"  # 14:30 UTC
SHORT_DATETIME_FORMAT = "d/m/Y H:i T"  # 25/10/2006 14:30 UTC

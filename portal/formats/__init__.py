"""The portal's date and time formats (FORMAT_MODULE_PATH): times as its pages show them
(portal.templatetags.moments), for whatever Django formats by itself, the admin above all."""

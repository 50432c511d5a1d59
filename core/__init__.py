"""The ground floor of the house: the error family, config fields that describe their flags, file kinds."""

"""Writers of this project's models in other toolkits' formats."""

"""Learning code: policies trained by RoboMD on demonstrations."""

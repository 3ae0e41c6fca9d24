"""homeclub — customer club and CRM for a Chinese real-estate developer."""
